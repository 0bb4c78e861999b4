"""What a run writes: the results files (JSON, CSV, Parquet), the annotated figure, the timeline of a
video's tracks, and the annotated video."""
