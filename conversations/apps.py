from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "Conversations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from corsheaders.signals import check_request_enabled

        import conversations.dialects.checks  # noqa: F401 - registers the open-mount deploy check
        from conversations.dialects.cors import mount_origin_allowed
        from conversations.request_ids import install_log_record_factory

        install_log_record_factory()
        from django.db.models.signals import post_delete

        from conversations.attachments.store import file_follows_row
        from conversations.models import Attachment

        post_delete.connect(file_follows_row, sender=Attachment, dispatch_uid="attachment-file-follows-row")
        check_request_enabled.connect(mount_origin_allowed, dispatch_uid="compat-mount-origins")
