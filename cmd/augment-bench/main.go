// Command augment-bench runs the connector's end-to-end benchmarks in one process: a Kafka
// cluster (kfake, or the brokers in KAFKA_BROKERS), a schema registry (srfake), the Data
// Augmentation API simulator on loopback plain HTTP and the connector, with a pipeline of four
// variables over Confluent-framed Avro flat customer records (schemas/avro/customer-flat.avsc).
//
//	go run ./cmd/augment-bench throughput [--events 200000] [--ids 10000] [--distinct] [--cpuprofile FILE]
//	go run ./cmd/augment-bench budget [--load under|over] [--limit 100] [--minutes 3]
//	go run ./cmd/augment-bench backlog [--events 300000] [--ids 20000] [--limit 6000]
//	go run ./cmd/augment-bench stale [--ended 100] [--live 10] [--call-every 2s] [--not-found-grace D] [--max-record-age D] [--on-stale skip|deadLetter] [--require-active]
//
// Each scenario prints one result line of key=value pairs on stdout and exits non-zero when a
// check fails (a 429, an unwritten value, a dead letter). BENCHMARKS.md has the commands and the
// figures. Because kfake and the simulator share the process, CPU time and RSS are the whole
// process's; with --cpuprofile the profile's goroutines are labelled part=kafka|sim|connector
// (`go tool pprof -tags FILE` splits the CPU between them).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "augment-bench:", err)
		}
		os.Exit(1)
	}
}

const usage = `usage: augment-bench SCENARIO [flags]

scenarios:
  throughput   a produced backlog of flat records, budget off: events/s, CPU/event, RSS, allocations
  budget       events produced in real time at the real limit: 429s, latency, requests per interaction
  backlog      a large backlog at a tight limit: time to drain against the budget's minimum
  stale        the morning after an outage at the real limit: a backlog of ended calls (404) and
               live ones, new calls starting while it drains: requests per ended call, first writes
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no scenario")
	}
	switch args[0] {
	case "throughput":
		return runThroughput(ctx, args[1:], stdout, stderr)
	case "budget":
		return runBudget(ctx, args[1:], stdout, stderr)
	case "backlog":
		return runBacklog(ctx, args[1:], stdout, stderr)
	case "stale":
		return runStale(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown scenario %q", args[0])
}

// newLogger logs the connector's warnings and errors to stderr.
func newLogger(stderr io.Writer, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(stderr), lvl)), nil
}

// progress prints a line to stderr when verbose.
func progress(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "# "+format+"\n", args...)
}
