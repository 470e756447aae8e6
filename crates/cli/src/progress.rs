//! Progress bars on stderr (only when it is a terminal). OWNER: readers helper.
