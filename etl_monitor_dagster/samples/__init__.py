"""What the demo and the quick start run: the retail demo's PYTHON task and the sample notebook."""
