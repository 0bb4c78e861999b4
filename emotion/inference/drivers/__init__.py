"""What runs the predictor over many inputs: the inputs (files and folders into jobs), a predict session
(the CLI's), the bulk pipeline, and the same pipeline on Ray Data."""
