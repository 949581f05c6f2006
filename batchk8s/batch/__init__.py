"""Azure Batch engine: pools whose start task bootstraps Kubernetes, jobs and their tasks.

`client` builds the one BatchClient; `pools` and `jobs` are the services the HTTP functions, the
CLI and `plan` share. The Azure SDK is imported inside the functions that need it (cold start).
"""
