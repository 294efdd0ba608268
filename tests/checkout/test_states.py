from checkout.models import OrderStatus as O
from checkout.models import PaymentStatus as P
from checkout.states import can_start_payment, status_after


def test_success_pays_a_waiting_order():
    assert status_after(O.PENDING, P.SUCCEEDED) == O.PAID
    assert status_after(O.UNPAID, P.SUCCEEDED) == O.PAID


def test_success_after_expiry_or_failure_still_pays():
    assert status_after(O.EXPIRED, P.SUCCEEDED) == O.PAID
    assert status_after(O.FAILED, P.SUCCEEDED) == O.PAID


def test_paid_is_final():
    for reported in P:
        assert status_after(O.PAID, reported) is None


def test_failure_and_close_only_end_a_waiting_order():
    assert status_after(O.PENDING, P.FAILED) == O.FAILED
    assert status_after(O.PENDING, P.CLOSED) == O.EXPIRED
    assert status_after(O.EXPIRED, P.FAILED) is None
    assert status_after(O.FAILED, P.CLOSED) is None


def test_a_started_payment_makes_only_an_unpaid_order_pending():
    assert status_after(O.UNPAID, P.PENDING) == O.PENDING
    for current in (O.PENDING, O.PAID, O.FAILED, O.EXPIRED):
        assert status_after(current, P.PENDING) is None


def test_only_an_unpaid_order_starts_a_payment():
    assert can_start_payment(O.UNPAID)
    assert not any(can_start_payment(s) for s in (O.PENDING, O.PAID, O.FAILED, O.EXPIRED))
