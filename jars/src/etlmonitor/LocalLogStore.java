package etlmonitor;

import java.io.BufferedWriter;
import java.io.File;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.UUID;

import io.delta.storage.HDFSLogStore;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Delta's log store for local files: commits put if absent whoever else writes the folder, and a listing of
 * _delta_log in time proportional to the files it returns.
 *
 * <p>A commit is written to a temporary file and hard-linked to its version's name: the link fails when the
 * version exists, atomically, so a commit can never replace another writer's (HDFSLogStore's rename checks
 * first and renames after, safe only among the threads of one JVM). The monitor's own processes append to the
 * event log the same way (etl_monitor_dagster/core/local_delta.py).
 *
 * <p>Delta asks for the log's files from a version on (the last checkpoint's) on every read and commit.
 * HDFSLogStore answers with a status for every file in the directory and then filters by name: about
 * 50 microseconds a file, so a table's statements slow down with its whole history. This store reads
 * the directory's names, keeps those at or after the requested one, and asks a status for those only.
 */
public class LocalLogStore extends HDFSLogStore {

    public LocalLogStore(Configuration hadoopConf) {
        super(hadoopConf);
    }

    @Override
    public void write(Path path, Iterator<String> actions, Boolean overwrite, Configuration hadoopConf)
            throws IOException {
        if (overwrite || !"file".equals(path.toUri().getScheme())) {
            super.write(path, actions, overwrite, hadoopConf);
            return;
        }
        java.nio.file.Path target = new File(path.toUri().getPath()).toPath();
        Files.createDirectories(target.getParent());
        java.nio.file.Path temporary = target.resolveSibling("." + target.getFileName() + "." + UUID.randomUUID() + ".tmp");
        try {
            try (BufferedWriter out = Files.newBufferedWriter(temporary, StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                while (actions.hasNext()) {
                    out.write(actions.next());
                    out.write('\n');
                }
            }
            Files.createLink(target, temporary);
        } catch (FileAlreadyExistsException taken) {
            throw new FileAlreadyExistsException(path.toString());
        } finally {
            Files.deleteIfExists(temporary);
        }
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
