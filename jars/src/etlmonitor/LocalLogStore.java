package etlmonitor;

import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;

import io.delta.storage.HDFSLogStore;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Delta's log store for local files, listing a _delta_log in time proportional to the files it returns.
 *
 * <p>Delta asks for the log's files from a version on (the last checkpoint's) on every read and commit.
 * HDFSLogStore answers with a status for every file in the directory and then filters by name: about
 * 50 microseconds a file, so a table's statements slow down with its whole history. This store reads
 * the directory's names, keeps those at or after the requested one, and asks a status for those only.
 * Writes are HDFSLogStore's (atomic, via FileContext's rename).
 */
public class LocalLogStore extends HDFSLogStore {

    public LocalLogStore(Configuration hadoopConf) {
        super(hadoopConf);
    }

    @Override
    public Iterator<FileStatus> listFrom(Path path, Configuration hadoopConf) throws IOException {
        FileSystem fs = path.getFileSystem(hadoopConf);
        Path parent = path.getParent();
        String[] names = new File(parent.toUri().getPath()).list();
        if (names == null) {
            throw new FileNotFoundException("No such file or directory: " + parent);
        }
        String from = path.getName();
        Arrays.sort(names);
        List<FileStatus> found = new ArrayList<>();
        for (String name : names) {
            if (name.compareTo(from) >= 0) {
                try {
                    found.add(fs.getFileStatus(new Path(parent, name)));
                } catch (FileNotFoundException gone) {
                    // removed since the directory was read (log cleanup): as if listed a moment later
                }
            }
        }
        return found.iterator();
    }
}
