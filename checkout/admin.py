from django.contrib import admin

from checkout.models import Flag, Notification, Order, Payment, Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "price", "currency"]


class PaymentInline(admin.StackedInline):
    model = Payment
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in Payment._meta.fields]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["biz", "product", "amount", "currency", "status", "created_at", "paid_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["biz", "payment__payment_id"]
    readonly_fields = [f.name for f in Order._meta.fields]
    inlines = [PaymentInline]


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["payment_id", "order", "status", "amount", "currency", "last_heard_at"]
    list_filter = ["status"]
    search_fields = ["payment_id", "order__biz"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["received_at", "event_id", "biz", "verdict", "outcome", "remote_addr"]
    list_filter = ["verdict", "outcome"]
    search_fields = ["event_id", "biz", "payment_id"]
    readonly_fields = [f.name for f in Notification._meta.fields]


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "order", "resolved"]
    list_filter = ["kind", "resolved"]
    search_fields = ["order__biz"]
