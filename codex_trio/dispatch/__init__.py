"""From a canonical Turn to an open upstream stream: model routing, account choice, failover before the
first byte."""
