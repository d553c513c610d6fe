package connector

import (
	"time"

	"github.com/augment-connector/augment-connector/internal/ledger"
)

// FakeLedger is a fake member of the budget ledger, for the external tests of coordination
// kafka until the real member is built.
type FakeLedger struct{ f *fakeMember }

// UseFakeLedger switches o to budget coordination kafka with a fake member granting one
// claim per grantEvery.
func UseFakeLedger(o *Options, grantEvery time.Duration) *FakeLedger {
	f := newFakeMember(grantEvery)
	o.Budget.Coordination = BudgetKafka
	o.ledgerHooks = fakeLedgerHooks(f, nil, nil)
	return &FakeLedger{f}
}

// SetReady makes Ready return err.
func (l *FakeLedger) SetReady(err error) { l.f.setReady(err) }

// Uses are the claims finished, in order.
func (l *FakeLedger) Uses() []ledger.Use { return l.f.uses() }

// Check reports what the member saw: claims granted, claims finished twice, whether Run ran
// and stopped, and the claims still outstanding when it stopped (-1: it has not stopped).
func (l *FakeLedger) Check() (acquired, doubles int, ran, running bool, outstandingAtStop int) {
	l.f.mu.Lock()
	defer l.f.mu.Unlock()
	return l.f.acquired, l.f.doubles, l.f.ran, l.f.running, l.f.stoppedOut
}

// UseFakeLedgerTopicError switches o to coordination kafka with a ledger topic check that
// fails with err.
func UseFakeLedgerTopicError(o *Options, err error) {
	o.Budget.Coordination = BudgetKafka
	o.ledgerHooks = fakeLedgerHooks(newFakeMember(0), []string{"a warning"}, err)
}
