from django.urls import path

from billing import api

budgets = api.BudgetViewSet.as_view({"get": "list", "post": "create"})
budget = api.BudgetViewSet.as_view(
    {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}
)

urlpatterns = [
    path("api/budgets", budgets, name="budget-list"),
    path("api/budgets/<int:pk>", budget, name="budget-detail"),
]
