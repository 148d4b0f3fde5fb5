"""The notifier: tells the trader about fills, refusals and faults on Telegram, Discord or a webhook.

It reads the decisions, executions, audit and dead-letter streams with its own consumer group, so a
slow or unreachable destination delays no order.
"""
