"""The daily run (shell): the worklist, the run itself, checks across tubes, the output set."""
