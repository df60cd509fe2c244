//! Alerts to the log and a webhook, with a cooldown per kind (being built).
