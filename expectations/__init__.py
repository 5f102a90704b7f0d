"""Great Expectations suites for the staged tables and the runner that splits rows by them."""
