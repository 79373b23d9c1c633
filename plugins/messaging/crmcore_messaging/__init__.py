"""crmcore-messaging: messages to customers and staff through pluggable channels.

Messages are queued inside the caller's unit of work (:func:`crmcore_messaging.queue.enqueue`)
and sent after commit by :func:`crmcore_messaging.delivery.send_pending` (``crm messages
send``), obeying consent, frequency caps, quiet hours and erasure. See docs/plugins/messaging.md.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
