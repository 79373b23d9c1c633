"""crmcore-activities: tasks, reminders, follow-up cadences and customer care for crmcore."""

__version__ = "0.1.0"

__all__ = ["__version__"]
