"""HTTP and timer functions: one Blueprint per area, thin over the services."""
