// Package connector is the consumer half and the writer half of augment-connector: it reads
// the pipelines' topics in a consumer group, decodes and transforms each record on a worker
// per partition (keeping partition order), coalesces the variables per tenant and identifier,
// writes them to the Data Augmentation API within each tenant's budget, and commits an offset
// only once every record below it is done. docs/DESIGN.md gives the reasons and the
// invariants ("The path of a record", "Invariants", "Failure classes", "Goroutines, contexts
// and locks", "The API contract"); this comment says where each step lives.
//
// # The path of a record
//
//  1. Poll (poller.run, poller.go). kgo polls with BlockRebalanceOnPoll, no more records
//     than flow.pollRoom allows; dispatch registers each record with its partition's tracker
//     (partition.add, tracker.go) in offset order, counts it in flow (flow.admit) and queues
//     it for the partition's worker (recQueue). Transaction markers are done at once.
//     Fetching pauses when flow says so (pauseAll, pauseTenants) and resumes at low water.
//     The rebalance callbacks (poller.assigned, revoked, lost) start and stop a worker per
//     partition; kgo never runs one between a poll and its AllowRebalance.
//  2. Decode and transform (worker.run, handle, process, apply; worker.go). One worker per
//     partition, in order: decode (schemas.Retrying: a registry outage is retried, never
//     dead-lettered), wait for the lookup tables to pass the record, apply the pipeline with
//     the worker's own runner. A record filtered or skipped is done (recordDone); one that
//     cannot succeed is dead-lettered (deadLetters.write, deadletter.go) and then done; the
//     rest makes one contribution per identifier, charged to flow and queued in its tenant's
//     coalescer (tenant.add). A replayed dead letter without its value is read again from its
//     source first (sourceReader, reread.go).
//  3. Coalesce (coalescer.go). Per identifier an ordered list of contributions; a new one
//     supersedes the earlier ones it covers on arrival; identifiers wait in urgency order
//     (brand-new interactions first, then the oldest) after an optional linger.
//  4. Dispatch (tenant.run, tenant.go). When an identifier is ready, a concurrency slot is free
//     and the tenant is not blocked, the dispatcher reserves the budget (budget.go: a
//     pacer.Pacer with budget.coordination local, a claim of the budget ledger with kafka,
//     ledgerbudget.go) and only then takes the request (coalescer.take folds the identifier's
//     contributions: last value per name wins, at most 50 variables), so whatever arrived
//     while it waited is in it. Each request is sent on a goroutine of its own.
//  5. Send (sender.go). attempt (its own reservation of the budget, begun just before the
//     HTTP POST, which is classified in client.go, and ended as answered, uncertain or
//     unused), observe (what
//     the answer tells the tenant), decide (done / retry after d / block the tenant /
//     dead-letter with a class), in a loop until done, dead-lettered or abandoned.
//  6. Done (tenant.finish, coalescer.finish, Connector.contributionDone). A request carried
//     completes its contributions; a record is done when all its identifiers' contributions
//     are (or it was dead-lettered); recordDone (worker.go) has partition.markDone advance the
//     watermark past the done prefix and flow.done release what the record held.
//     With tracing on (tracing.go) each record carries its span from step 2 to here: the
//     worker starts it with decode and transform children, a request's budget.wait and
//     api.request spans go under the first record it carries and link to the others, and
//     recordDone ends it with the record's outcome.
//  7. Commit (committer.go). The watermarks are committed every CommitInterval, for the
//     partitions being revoked (under the same lock that marks them revoked, so no commit
//     decided before a revoke lands after it) and at shutdown. A lost partition commits
//     nothing.
//
// # Goroutines
//
// Every goroutine has an owner that stops it and waits for it; they stop in this order at a
// graceful shutdown (Run's ctx cancelled): the poll loop returns; the drain lets pending work
// finish for up to ShutdownTimeout (with the budget ledger instead: the tenants leave, that
// is stop reserving and retrying, and only the attempts on the wire finish); then dispatchers
// and committer, senders and workers are cancelled and awaited; the last commit is made; the
// client is closed (its revoke callback stops what is left of the workers); the ledger member
// stops (returning its unused grants); the tables stop.
//
//	goroutine                      owner, started by                   context                         stops when
//	poll loop (poller.run)         Run (the caller's goroutine)        Run's ctx                       ctx ends, a fatal error, the client closes
//	fatal watcher                  poller.run                          pollCtx (Run's ctx)             poller.run returns (cancels pollCtx)
//	lookup tables (Tables.Run)     Run, via startTables                WithoutCancel(ctx) + cancel     Run returns (stopTables, after the drain)
//	partition worker (worker.run)  poller.assigned, one per partition  workCtx + per-partition cancel  its partition is released (awaited there), or workCtx ends
//	tenant dispatcher (run)        Run, one per tenant                 dispatchCtx (from workCtx)      stopAll cancels dispatchCtx; waits for its senders
//	request sender (send)          the tenant's dispatcher             sendCtx + per-request cancel    the request ends; revoke cancels it after RevokeGrace; stopAll cancels sendCtx
//	committer (committer.run)      Run                                 dispatchCtx                     stopAll cancels dispatchCtx
//	group lag (groupLag.run)       Run, via startGroupLag              Run's ctx + cancel              stopAll (or Run's return) cancels it and waits
//	group lag probe client (kgo)   groupLag.probe, while holding role  the probe's ctx (10 s)          the probe returns (closed there)
//	ledger member (Member.Run)     Run, via startLedger (kafka only)   WithoutCancel(ctx) + cancel     Run returns (stopLedger, after the tenants and the commit); waited for
//	ledger client (kgo)            startLedger                         the client                      stopLedger closes it after the member stopped
//	kgo's own goroutines           kgo.NewClient in Run                the client                      client.Close, at the end of Run
//	re-read client (sourceReader)  a worker, replaying only            the worker's ctx + timeout      the record is read or the timeout passes (closed on return)
//
// # Locks
//
// No lock is held across a network call, with one deliberate exception: a commit holds the
// committer's mutex, which is what orders commits with revocation. Locks are taken in this
// order and never the other way:
//
//	committer.mu → partition.mu
//	tenant.mu → coalescer.mu → the budget's (pacer.Pacer's) mu
//	(a ledger budget takes no lock of its own; the member's are the ledger's, never held by us)
//	poller.mu, recQueue.mu, apiClient.mu and deadLetters take no other lock.
//
// What each lock guards:
//
//	poller.mu       the partition map (parts) and publishing its snapshot; only the rebalance
//	                callbacks take it. Everyone else reads the snapshot (poller.owned, an
//	                atomic pointer to a map never changed once stored), without a lock.
//	committer.mu    no field: held for the whole of a commit, and by release while it revokes.
//	partition.mu    recs, watermark, committed, epoch, revoked, and each of its recs' done.
//	recQueue.mu     recs, closed.
//	tenant.mu       inflight, reqs, blocked, blockReason, probing, nextProbe, lastOK,
//	                lastBlockLog, gone.
//	coalescer.mu    idents, ready, lingering, written (and the idents' state).
//	apiClient.mu    token, auth.
//
// Counters read by other goroutines are atomics: flow's counts, the Stats counters,
// a rec's size, outstanding and deadLettered, a partition's revokedFlag, hw and first, the
// poller's lastLoop and assignedOnce, the Connector's health flags. Fields set by New (and
// the Kafka client, set by Run before the group is joined) are read-only after.
package connector
