"""The admin, for finding any order, payment or notification fast.

Search takes any id a person is likely to hold: the order's biz, the payment id, the event id.
Every object links to the others of the same payment; the raw notification body is shown as text,
never editable: it is the record of what the payment system sent (of a refused request, what was
kept of it, beside its length and hash).
"""

from django.contrib import admin
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.html import format_html

from checkout.models import Flag, Notification, Order, Payment, Product


def _change_link(obj, label: str | None = None) -> str:
    if obj is None:
        return "-"
    meta = obj._meta
    url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, label or str(obj))


def _filtered_link(model_name: str, field: str, value: str, label: str = "") -> str:
    if not value:
        return "-"
    url = reverse(f"admin:checkout_{model_name}_changelist")
    return format_html('<a href="{}?{}={}">{}</a>', url, field, value, label or value)


def _notifications_link(biz: str) -> str:
    count = Notification.objects.filter(biz=biz).count()
    return _filtered_link("notification", "biz", biz, f"{count} notification(s)")


class EventIdSearch:
    """Search also takes a notification's event id (evt_...) and finds what it was about."""

    biz_lookup = "biz"

    def get_search_results(self, request, queryset: QuerySet, search_term: str):
        queryset, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term.startswith("evt_"):
            bizs = Notification.objects.filter(event_id=term).values("biz")
            queryset |= self.model.objects.filter(**{f"{self.biz_lookup}__in": bizs})
        return queryset, duplicates


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened: looked at, never edited by hand."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "price", "currency"]
    search_fields = ["name", "slug"]


class PaymentInline(admin.StackedInline):
    model = Payment
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in Payment._meta.fields]


class FlagInline(admin.TabularInline):
    model = Flag
    extra = 0
    can_delete = False
    fields = ["kind", "detail", "created_at", "resolved"]
    readonly_fields = ["kind", "detail", "created_at"]


@admin.register(Order)
class OrderAdmin(EventIdSearch, admin.ModelAdmin):
    list_display = [
        "biz",
        "product",
        "amount",
        "currency",
        "status",
        "provider",
        "created_at",
        "paid_at",
    ]
    list_filter = ["status", "provider", "currency", "created_at", "product"]
    list_select_related = ["product"]
    search_fields = ["=biz", "=payments__payment_id", "owner"]
    date_hierarchy = "created_at"
    readonly_fields = [*(f.name for f in Order._meta.fields), "notifications"]
    inlines = [PaymentInline, FlagInline]

    @admin.display(description="notifications")
    def notifications(self, order: Order) -> str:
        return _notifications_link(order.biz)


@admin.register(Payment)
class PaymentAdmin(EventIdSearch, ReadOnlyAdmin):
    biz_lookup = "order__biz"
    list_display = [
        "payment_id",
        "gateway",
        "order_link",
        "status",
        "amount",
        "currency",
        "created_at",
        "last_heard_at",
    ]
    list_filter = ["status", "gateway", "created_at"]
    list_select_related = ["order"]
    search_fields = ["=payment_id", "=order__biz"]
    date_hierarchy = "created_at"
    readonly_fields = [*(f.name for f in Payment._meta.fields), "order_link", "notifications"]

    @admin.display(description="order", ordering="order__biz")
    def order_link(self, payment: Payment) -> str:
        return _change_link(payment.order)

    @admin.display(description="notifications")
    def notifications(self, payment: Payment) -> str:
        return _notifications_link(payment.order.biz)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = [
        "received_at",
        "gateway",
        "event_id",
        "biz_link",
        "payment_id",
        "verdict",
        "outcome",
        "remote_addr",
    ]
    list_filter = ["verdict", "outcome", "gateway", "received_at"]
    search_fields = ["=event_id", "=biz", "=payment_id"]
    date_hierarchy = "received_at"
    exclude = ["body"]
    readonly_fields = [
        *(f.name for f in Notification._meta.fields if f.name != "body"),
        "biz_link",
        "payment_link",
        "body_text",
    ]

    def get_queryset(self, request) -> QuerySet:
        # The list never shows the body: do not fetch up to 64 KiB per row.
        return super().get_queryset(request).defer("body")

    # Links by id, not by row: no query per line of the list.
    @admin.display(description="order", ordering="biz")
    def biz_link(self, notification: Notification) -> str:
        return _filtered_link("order", "biz", notification.biz)

    @admin.display(description="payment")
    def payment_link(self, notification: Notification) -> str:
        return _filtered_link("payment", "payment_id", notification.payment_id)

    @admin.display(description="raw body (as received)")
    def body_text(self, notification: Notification) -> str:
        kept = bytes(notification.body)
        text = kept.decode("utf-8", errors="replace")
        if len(kept) >= notification.body_length:  # whole (or stored before lengths were)
            return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)
        return format_html(
            "<p>The first {} of {} bytes: a refused request keeps no more.</p>"
            '<pre style="white-space: pre-wrap">{}</pre>',
            len(kept),
            notification.body_length,
            text,
        )


@admin.register(Flag)
class FlagAdmin(EventIdSearch, admin.ModelAdmin):
    list_display = ["created_at", "kind", "order_link", "resolved"]
    list_filter = ["kind", "resolved", "created_at"]
    list_select_related = ["order"]
    search_fields = ["=order__biz", "=order__payments__payment_id"]
    biz_lookup = "order__biz"
    date_hierarchy = "created_at"
    readonly_fields = ["order_link", "kind", "detail", "created_at"]
    fields = ["order_link", "kind", "detail", "created_at", "resolved"]

    @admin.display(description="order", ordering="order__biz")
    def order_link(self, flag: Flag) -> str:
        return _change_link(flag.order)
