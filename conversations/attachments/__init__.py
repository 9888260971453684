"""Attachments: files a user message carries (docs/attachments.md)."""
