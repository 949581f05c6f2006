"""batchk8s: scheduled compute control, Kubernetes on Azure Batch, workflows and TES on Azure."""

__version__ = "0.1.0"
