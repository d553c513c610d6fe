// Package chaos is the chaos suite of augment-connector: it runs the real binary as child
// processes against a broker (a standalone kfake process, or KAFKA_BROKERS) and the API
// simulator, drives a seeded workload, breaks things (SIGKILL, rebalances, SIGTERM, dead
// letters and replay, API and broker outages), and checks the outcome against an expectation
// computed from the produced records alone.
//
// The tests carry the build tag chaos, so `go test ./...` stays fast:
//
//	go test -tags chaos -count=1 -v ./internal/chaos/
//	KAFKA_BROKERS=127.0.0.1:9092 go test -tags chaos -count=1 -v ./internal/chaos/
//
// RELIABILITY.md lists each scenario, what it proves and its figures. harness_test.go holds
// the parts every scenario uses (see Env); a new scenario is one test function that builds an
// Env, starts connectors, does its damage and ends with Env.Verify.
//
// # Budget scenarios (issue 14)
//
// budget_test.go runs N replicas against the simulator with its rate limit on (the tenant's
// requestsPerMinute equals it) and a script of joins, leaves (SIGTERM), SIGKILLs and rolling
// restarts (SIGTERM and the replacement started at once), on a topic of 6 partitions. The
// workload keeps every loaded partition's backlog at a quarter of a minute's budget (spread
// over the loaded partitions), so demand exceeds the limit the whole time wherever the
// partitions are: 70% updates of the partition's 200 most recent identifiers and 30% new
// ones, plus a trickle of brand-new interactions (a tenth of the limit) for the first-write
// latency. The skews are even, all on 2 of 6 partitions, and a hot topic beside a quiet one. After the script
// the backlog drains; then lost = 0 is checked by Env.Verify (by checkWrittenAll with two
// topics). budget_analysis_test.go reads the simulator's journal, every attempt of the
// tenant whatever its status, and prints one line per scenario:
//
//	CHAOS budget-restart broker=kfake coordination=local(no-section) replicas=1 skew=even
//	  limit=1200 max60s=1221 429s=21 script=1577/2600(61%) minutes=[98% 7%* 1%]
//	  idle_max=30.8s first_write_p50=312ms first_write_p99=2m4.175s (n=260)
//	  req_per_interaction=2.08 requests=1944 records=2535 lost=0
//
// (one line in the output, wrapped here; recorded before min60s was added).
//
// max60s is the most attempts in any rolling 60 s (the limit is the bound), min60s the fewest
// in any rolling 60 s between the warm-up's end and the drain's (issue 14's "worst rolling
// minute"; -1 when no window fits); script is the attempts while the load ran (Duration)
// against the limit prorated to that time (limit × Duration / 60 s; a rolling window allows
// more, so a run that starts with a full minute can pass 100%); minutes are the full minutes
// from the first replica's start plus a 10 s warm-up until the drain, each as a share of the
// limit ("-" before a minute in which records were not pending throughout, "*" after one
// holding a SIGKILL or a restart); idle_max is the longest time without any request after the
// warm-up; the first-write latency is from a trickle record's produce to its identifier's
// first request at the simulator.
//
// BENCHMARKS.md ("Issue 14: several replicas against the rate-limited simulator") records
// the runs.
//
// With coordination kafka (the default) each scenario asserts issue 14's properties: max60s
// at most the limit, no 429, lost = 0, every full minute with demand at 98% of the limit or
// more (95% for one holding a SIGKILL or a restart), and in the under-budget scenario a
// first-write p99 of 1 s at most. With local, the baseline, only lost = 0. While the binary
// rejects a budget section (issue 14's config not merged), local writes none (today's
// per-replica pacer is then the only behaviour) and kafka skips in the regular run and
// fails under CHAOS_BUDGET=1.
//
//	CHAOS_BUDGET=1                           run the long scenarios (2-4 minutes each)
//	CHAOS_BUDGET_COORDINATION=kafka|local    the coordination the configs name; default kafka
//
//	CHAOS_BUDGET=1 CHAOS_BUDGET_COORDINATION=local go test -tags chaos -run TestChaosBudget \
//	  -count=1 -timeout 40m -v ./internal/chaos/
//
// Only TestChaosBudgetRestart (one replica restarted after a busy minute, at 1,200 a
// minute, about 2.5 minutes) runs without CHAOS_BUDGET, so the regular chaos run keeps one
// rate-limited scenario.
//
// # Ledger faults (issue 14)
//
// budget_faults_test.go adds the faults of issue 14's chaos list through the same runner:
// three replicas from the start, load on all 6 partitions, 1,200 a minute, coordination
// kafka, CHAOS_BUDGET=1. Each asserts max60s ≤ limit, 429s = 0 and lost = 0 (Env.Verify:
// nothing lost, commits never ahead of writes); max60s counts every arrival at the
// simulator, a request the client gave up on included. The sequencer is found in the ledger
// topic itself (the current epoch's takeover record names its member) and mapped to a
// replica by the member id each logs when it joins the ledger ("joined the budget ledger").
// Each appends what it measured to its CHAOS line:
//
//   - TestChaosBudgetKillSequencer: the sequencer SIGKILLed at 40 s, not replaced. Asserts
//     the per-minute floors (95% for the minute of the kill) and that requests resume within
//     5 s; reports kill_minute, the longest gap without a request after the kill, the
//     requests per second from 2 s before it, and from the ledger the new epoch's takeover,
//     its first grant and the first request after that grant (resumed), all from the kill.
//   - TestChaosBudgetKillMember: a member that is not the sequencer SIGKILLed at 40 s.
//     Asserts the floors; reports the dip and the killed member's granted slots that never
//     got a final report, with the time their holds end (grant + claimValidity +
//     requestTimeout + 60 s + ε: docs/LEDGER.md's bound on a crashed member's grants).
//   - TestChaosBudgetFrozenSequencer: the sequencer SIGSTOPped at 30 s and continued at
//     120 s (the consumer group kicks it meanwhile). Minutes reported, not asserted; reports
//     the takeover, the frozen epoch's grants appended after the takeover (void; a valid one
//     fails the test), what the member reported after waking for the slots granted to it
//     before the freeze (returned: its claims had expired), and the requests it made after
//     waking.
//   - TestChaosBudgetAPILatency: the simulator delays every response 1.5-2.5 s from 30 s to
//     90 s, the tenant's requestTimeout 2 s, so about half the attempts end uncertain.
//     Minutes reported, not asserted; reports the arrivals in the latency, those the client
//     gave up on (journaled with status 0; the test fails if there are none) and the slots
//     reported uncertain in the ledger.
//   - TestChaosBudgetLedgerDeleted: the ledger topic deleted (kadm) at 40 s. Asserts that
//     every replica's /readyz says the budget ledger is unavailable within 25 s and that no
//     request arrives later than a claim handed out before the deletion could be used
//     (claimValidity + requestTimeout + 1 s) until the topic is re-created at 65 s, with
//     ledger.EnsureTopic (the connector's settings); watches 15 s whether the running
//     members recover by themselves (docs/LEDGER.md: they read nothing new until they
//     restart), then restarts the three replicas one by one from 80 s and lets the backlog
//     drain. Minutes reported, not asserted.
//   - TestChaosBudgetLedgerRecreatedAtOnce: the ledger topic deleted at 70 s, when the
//     API's window holds a full minute, re-created 2 s later and the replicas restarted at
//     once. It fails "never over" today (a rebuild from a re-created topic sees an empty
//     window: see the test's comment and BENCHMARKS.md).
package chaos
