//! OWNER: readers helper. Input walking, format detection, readers and the parallel pipeline.
