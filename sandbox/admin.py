from django.contrib import admin

from sandbox.models import DeliveryAttempt, Knobs, Notification, Payment


class NotificationInline(admin.TabularInline):
    model = Notification
    fields = ["id", "type", "state", "attempts", "next_attempt_at", "delivered_at", "last_status"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["id", "out_trade_no", "amount", "currency", "status", "created", "paid_at"]
    list_filter = ["status", "currency"]
    search_fields = ["id", "out_trade_no", "idempotency_key"]
    readonly_fields = ["id", "created", "updated", "request_fingerprint"]
    inlines = [NotificationInline]


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["number", "kind", "sent_at", "duration_ms", "status_code", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "payment", "state", "attempts", "next_attempt_at", "last_status"]
    list_filter = ["state", "type"]
    search_fields = ["id", "payment__id", "payment__out_trade_no"]
    readonly_fields = ["id", "payment", "type", "body_text", "url", "created", "copies", "probe"]
    exclude = ["body"]
    inlines = [DeliveryAttemptInline]

    @admin.display(description="body")
    def body_text(self, obj: Notification) -> str:
        return bytes(obj.body).decode()


@admin.register(Knobs)
class KnobsAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "delay_ms",
        "duplicate",
        "reorder_ms",
        "drop",
        "bad_signature_probes",
    ]
