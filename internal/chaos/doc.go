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
package chaos
