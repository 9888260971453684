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
        check_request_enabled.connect(mount_origin_allowed, dispatch_uid="compat-mount-origins")
