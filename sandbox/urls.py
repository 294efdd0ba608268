from django.urls import path

from sandbox.views import cashier, knobs, payments

app_name = "sandbox"

urlpatterns = [
    path("v1/payments", payments.payments, name="payments"),
    path("v1/payments/sync", payments.payments_sync, name="payments_sync"),
    path("v1/payments/<str:payment_id>", payments.payment_detail, name="payment"),
    path("v1/payments/<str:payment_id>/close", payments.payment_close_view, name="payment_close"),
    path("v1/knobs", knobs.knobs, name="knobs"),
    path("cashier/<str:payment_id>", cashier.cashier, name="cashier"),
]
