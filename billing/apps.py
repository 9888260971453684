from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Usage, prices and budgets"
    default_auto_field = "django.db.models.BigAutoField"
