"""The screening engine as it was before the blocked engine (commit 83997fe), kept
verbatim as the reference the new engines must reproduce row for row and column for
column. Only the imports between its modules point here."""
