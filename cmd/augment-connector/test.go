package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/augment-connector/augment-connector/internal/app"
)

// errTestsFailed marks a run of pipeline tests with a failing case: exit 1, the output said
// which.
var errTestsFailed = errors.New("pipeline tests failed")

// cmdTest runs pipeline test files offline (internal/app.RunPipelineTests): one line per case
// as go test prints them, what differs under a failing one, and a summary.
func cmdTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: augment-connector test FILE...\n\nRuns pipeline test files (README, \"Before you deploy\") offline; exit 1 when a case fails.")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%w: test needs at least one test file", errUsage)
	}
	res, err := app.RunPipelineTests(ctx, fs.Args(), stdout)
	if err != nil {
		return err
	}
	if res.Failed > 0 {
		fmt.Fprintf(stdout, "FAIL (%d passed, %d failed)\n", res.Passed, res.Failed)
		return errTestsFailed
	}
	fmt.Fprintf(stdout, "PASS (%d passed)\n", res.Passed)
	return nil
}
