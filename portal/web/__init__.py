"""HTML glue shared by the admin console and the Self Service Portal."""
