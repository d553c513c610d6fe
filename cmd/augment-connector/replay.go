package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/app"
	"github.com/augment-connector/augment-connector/internal/offsets"
)

// cmdReplay is `augment-connector replay --config FILE --from DLQ_TOPIC`: it re-processes
// dead-lettered records through the pipelines of their source topics (after the config or the
// data was fixed), committing its own progress under its own group, and exits once it has
// caught up with the dead-letter topic's end at start (or runs on with --follow).
func cmdReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/augment-connector/config.yaml", "config file")
	from := fs.String("from", "", "dead-letter topic to replay (default: deadLetter.topic of the config)")
	failed := fs.String("dead-letter", "", "topic for records that fail again (default: FROM.replay-failed)")
	group := fs.String("group", "", "consumer group of the replay (default: kafka.groupId + \"-replay\")")
	follow := fs.Bool("follow", false, "keep replaying new dead letters until interrupted")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	compiled, err := app.Load(*path)
	if err != nil {
		return err
	}
	cfg := compiled.Config
	log, err := newLogger(cfg.Logging.Level, cfg.Logging.Format, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	opts, err := compiled.Options(log)
	if err != nil {
		return err
	}
	if *from == "" {
		*from = cfg.DeadLetter.Topic
	}
	if *from == "" {
		return fmt.Errorf("%w: replay needs --from TOPIC (the config has no deadLetter.topic)", errUsage)
	}
	if *failed == "" {
		*failed = *from + ".replay-failed"
	}
	if *group == "" {
		*group = cfg.Kafka.GroupID + "-replay"
	}
	opts.ReplayFrom, opts.DeadLetterTopic, opts.Group = *from, *failed, *group
	flush, err := startTracing(ctx, cfg, &opts, log)
	if err != nil {
		return err
	}
	defer flush()
	c, err := connector.New(opts)
	if err != nil {
		return err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- c.Run(runCtx) }()
	log.Info("replaying", zap.String("from", *from), zap.String("failures_to", *failed), zap.String("group", *group))
	if !*follow {
		if err := waitCaughtUp(runCtx, opts.KafkaOpts, *group, *from, runErr); err != nil {
			stop()
			<-runErr
			return err
		}
		stop()
	}
	if err := <-runErr; err != nil {
		return err
	}
	st := c.Stats()
	fmt.Fprintf(stdout, "replayed=%d written=%d filtered=%d skipped=%d dead_lettered=%d (to %s)\n",
		st.Consumed, st.Done-st.Filtered-st.Skipped-st.DeadLettered, st.Filtered, st.Skipped, st.DeadLettered, *failed)
	return nil
}

// waitCaughtUp waits until group has committed, on every partition of topic, the end offset
// the topic had when the wait began.
func waitCaughtUp(ctx context.Context, kopts []kgo.Opt, group, topic string, runErr <-chan error) error {
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := offsets.Ends(ctx, adm, topic)
	if err != nil {
		return fmt.Errorf("reading the end of %s: %w", topic, err)
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		if lags, err := offsets.Lag(ctx, adm, group, topic); err == nil && lags.Reached(ends) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-runErr:
			if err == nil {
				err = fmt.Errorf("the replay stopped before catching up")
			}
			return err
		case <-tick.C:
		}
	}
}
