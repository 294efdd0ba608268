"""Random delivery histories (duplicates, reordering, late success, failure after success,
mismatched amounts, closes, active queries in between) always end in the payment system's truth."""

from hypothesis import given, settings, strategies as st
from hypothesis.extra.django import TestCase

from checkout.gateways.base import GatewayPayment
from checkout.models import Flag, Notification, Order, OrderStatus, Payment, PaymentStatus
from checkout.services.results import result_apply
from tests.checkout import factories as f

TO_ORDER = {
    "succeeded": OrderStatus.PAID,
    "failed": OrderStatus.FAILED,
    "closed": OrderStatus.EXPIRED,
}
QUERY = -1  # a step that is the reconciler's active query, not a delivery


@st.composite
def histories(draw):
    """What the payment system decided, in order, and the deliveries (and queries) that follow."""
    first = draw(st.sampled_from(["succeeded", "failed", "closed"]))
    events = [first]
    if first != "succeeded" and draw(st.booleans()):
        events.append("succeeded")  # a late success, as Alipay sends after our expiry
    wrong_amount = draw(st.booleans()) if "succeeded" in events else False
    copies = [draw(st.integers(min_value=1, max_value=3)) for _ in events]
    steps = [i for i, n in enumerate(copies) for _ in range(n)]
    steps += [QUERY] * draw(st.integers(min_value=0, max_value=2))
    return events, wrong_amount, draw(st.permutations(steps))


class DeliveryRulesTest(TestCase):
    @settings(max_examples=60, deadline=None)
    @given(histories())
    def test_any_history_ends_in_the_payment_systems_truth(self, history):
        events, wrong_amount, steps = history
        order = f.order(status=OrderStatus.PENDING)
        pay_id = f.payment_id()
        amount = order.amount + 1 if wrong_amount else order.amount
        bodies = [
            f.notice_body(
                order,
                kind=kind,
                pay_id=pay_id,
                event_id=f"evt_{i:024x}",
                amount=amount if kind == "succeeded" else None,
            )
            for i, kind in enumerate(events)
        ]
        told = "succeeded" if "succeeded" in events else events[0]
        # What an active query answers: the payment system has decided everything by now.
        truth = GatewayPayment(
            payment_id=pay_id,
            biz=order.biz,
            status=PaymentStatus(told),
            amount=amount if told == "succeeded" else order.amount,
            currency=order.currency,
        )
        seen_paid = False
        for step in steps:
            if step == QUERY:
                result_apply(biz=order.biz, payment=truth, provider="sandbox")
            else:
                body = bodies[step]
                self.assertEqual(f.notify(body).status_code, 200)
            status = Order.objects.get(pk=order.pk).status
            if seen_paid:
                self.assertEqual(status, OrderStatus.PAID, "paid is final")
            seen_paid = status == OrderStatus.PAID

        final = Order.objects.get(pk=order.pk).status
        if wrong_amount:
            before_success = TO_ORDER[events[0]] if events[0] != "succeeded" else "pending"
            self.assertEqual(final, before_success, "a mismatched amount never pays")
            self.assertTrue(Flag.objects.filter(order=order, kind="amount_mismatch").exists())
        else:
            self.assertEqual(final, TO_ORDER[told], "the final state is the payment system's")
        self.assertEqual(Payment.objects.get(order=order).status, told, "the mirror agrees")
        # The deliveries left the order where an active query of the truth would.
        self.assertFalse(result_apply(biz=order.biz, payment=truth, provider="sandbox").changed)
        records = Notification.objects.filter(biz=order.biz, verdict="accepted")
        self.assertEqual(
            records.count(), sum(s != QUERY for s in steps), "every accepted one is recorded"
        )
        for event_id in {r.event_id for r in records}:
            changed = records.filter(event_id=event_id).exclude(
                outcome__in=["unchanged", "amount_mismatch"]
            )
            self.assertLessEqual(changed.count(), 1, "an event changes the order at most once")
