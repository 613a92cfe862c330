"""Browser views of the automations app: the reviewer console lives in `review`."""
