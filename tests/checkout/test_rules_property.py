"""Random delivery histories (duplicates, reordering, late success, failure after success,
mismatched amounts, closes) always end in the payment system's truth."""

from hypothesis import given, settings, strategies as st
from hypothesis.extra.django import TestCase

from checkout.models import Flag, Notification, Order, OrderStatus
from tests.checkout import factories as f

TO_ORDER = {"succeeded": OrderStatus.PAID, "failed": OrderStatus.FAILED, "closed": OrderStatus.EXPIRED}


@st.composite
def histories(draw):
    """What the payment system decided, in order, and the deliveries it made of it."""
    first = draw(st.sampled_from(["succeeded", "failed", "closed"]))
    events = [first]
    if first != "succeeded" and draw(st.booleans()):
        events.append("succeeded")  # a late success, as Alipay sends after our expiry
    wrong_amount = draw(st.booleans()) if "succeeded" in events else False
    copies = [draw(st.integers(min_value=1, max_value=3)) for _ in events]
    deliveries = [i for i, n in enumerate(copies) for _ in range(n)]
    deliveries = draw(st.permutations(deliveries))
    return events, wrong_amount, deliveries


class DeliveryRulesTest(TestCase):
    @settings(max_examples=60, deadline=None)
    @given(histories())
    def test_any_history_ends_in_the_payment_systems_truth(self, history):
        events, wrong_amount, deliveries = history
        order = f.order(status=OrderStatus.PENDING)
        pay_id = f.payment_id()
        bodies = [
            f.notice_body(
                order,
                kind=kind,
                pay_id=pay_id,
                event_id=f"evt_{i:024x}",
                amount=order.amount + 1 if kind == "succeeded" and wrong_amount else None,
            )
            for i, kind in enumerate(events)
        ]
        seen_paid = False
        for index in deliveries:
            body = bodies[index]
            response = self.client.post(
                "/payments/notify/sandbox/",
                data=body,
                content_type="application/json",
                headers=f.signed_headers(body),
            )
            self.assertEqual(response.status_code, 200)
            status = Order.objects.get(pk=order.pk).status
            if seen_paid:
                self.assertEqual(status, OrderStatus.PAID, "paid is final")
            seen_paid = status == OrderStatus.PAID

        final = Order.objects.get(pk=order.pk).status
        if wrong_amount:
            self.assertNotEqual(final, OrderStatus.PAID, "a mismatched amount never pays")
            self.assertTrue(Flag.objects.filter(order=order, kind="amount_mismatch").exists())
        elif "succeeded" in events:
            self.assertEqual(final, OrderStatus.PAID)
        else:
            self.assertEqual(final, TO_ORDER[events[0]])
        accepted = Notification.objects.filter(biz=order.biz, verdict="accepted").count()
        self.assertEqual(accepted, len(deliveries), "every accepted notification is recorded")
