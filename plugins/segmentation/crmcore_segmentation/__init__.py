"""crmcore-segmentation: RFM, value tiers, CLV, rule-based segments, churn warning, retention."""

__version__ = "0.1.0"
