package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
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
	classes := fs.String("class", "", "replay only dead letters of these classes (comma-separated); default every class but not_found and stale, whose calls are over; \"all\" for every one")
	pipelines := fs.String("pipeline", "", "replay only dead letters of these pipelines (comma-separated)")
	since := fs.String("since", "", "replay only dead letters written at or after this time (RFC 3339, or a duration ago: 2h)")
	until := fs.String("until", "", "replay only dead letters written before this time (RFC 3339, or a duration ago)")
	dryRun := fs.Bool("dry-run", false, "print the dead letters the filters select and a summary; send and commit nothing")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	filter, err := newReplayFilter(*classes, *pipelines, *since, *until, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
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
	if *dryRun {
		return dryRunReplay(ctx, opts.KafkaOpts, *from, filter, stdout)
	}
	opts.ReplayFrom, opts.DeadLetterTopic, opts.Group = *from, *failed, *group
	opts.ReplayFilter = filter.match
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

// replayFilter selects the dead letters a replay re-runs, from their headers and timestamp.
type replayFilter struct {
	classes      map[string]bool // nil: every class
	skipClasses  map[string]bool // left out unless named (the default's not_found and stale)
	pipelines    map[string]bool // nil: every pipeline
	since, until time.Time       // zero: unbounded
}

// overClasses are the classes the default leaves out: a not_found or stale letter is about a
// call that is over, and replaying it would spend the budget on 404s.
var overClasses = map[string]bool{"not_found": true, "stale": true}

func newReplayFilter(classes, pipelines, since, until string, now time.Time) (*replayFilter, error) {
	f := &replayFilter{}
	switch classes {
	case "":
		f.skipClasses = overClasses
	case "all":
	default:
		f.classes = splitSet(classes)
	}
	if pipelines != "" {
		f.pipelines = splitSet(pipelines)
	}
	var err error
	if f.since, err = parseWhen("--since", since, now); err != nil {
		return nil, err
	}
	if f.until, err = parseWhen("--until", until, now); err != nil {
		return nil, err
	}
	if !f.since.IsZero() && !f.until.IsZero() && !f.until.After(f.since) {
		return nil, fmt.Errorf("--until %s is not after --since %s", f.until.Format(time.RFC3339), f.since.Format(time.RFC3339))
	}
	return f, nil
}

func splitSet(s string) map[string]bool {
	out := map[string]bool{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out[v] = true
		}
	}
	return out
}

// parseWhen reads an RFC 3339 time or a duration before now ("" is zero).
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time (2026-12-04T10:00:00Z) or a duration ago (2h)", flag, s)
}

func header(hs []kgo.RecordHeader, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// match reports whether the dead letter with these headers, written at ts, is replayed.
func (f *replayFilter) match(hs []kgo.RecordHeader, ts time.Time) bool {
	class := header(hs, connector.HeaderClass)
	switch {
	case f.classes != nil && !f.classes[class]:
		return false
	case f.skipClasses[class]:
		return false
	case f.pipelines != nil && !f.pipelines[header(hs, connector.HeaderPipeline)]:
		return false
	case !f.since.IsZero() && ts.Before(f.since):
		return false
	case !f.until.IsZero() && !ts.Before(f.until):
		return false
	}
	return true
}

// dryRunReplay reads topic from its start to its end (as it is now), outside any group, and
// prints each dead letter the filter selects (where it came from and why it failed; never its
// value) and a summary by class. It writes nothing.
func dryRunReplay(ctx context.Context, kopts []kgo.Opt, topic string, f *replayFilter, w io.Writer) error {
	cl, err := kgo.NewClient(append(slices.Clone(kopts), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()
	ends, err := offsets.Ends(ctx, kadm.NewClient(cl), topic)
	if err != nil {
		return fmt.Errorf("reading the end of %s: %w", topic, err)
	}
	left := map[int32]int64{}
	for _, p := range ends {
		if p.End > 0 {
			left[p.Partition] = p.End
		}
	}
	selected, total := map[string]int{}, 0
	n := 0
	for len(left) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fetches.Err0(); err != nil {
			return fmt.Errorf("reading %s: %w", topic, err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if header(r.Headers, connector.HeaderCheck) != "" {
				return
			}
			total++
			if !f.match(r.Headers, r.Timestamp) {
				return
			}
			class := header(r.Headers, connector.HeaderClass)
			selected[class]++
			n++
			msg := header(r.Headers, connector.HeaderMessage)
			if len(msg) > 200 {
				msg = msg[:200] + "..."
			}
			fmt.Fprintf(w, "%d@%d written=%s pipeline=%s class=%s source=%s/%s@%s: %s\n", r.Partition, r.Offset,
				r.Timestamp.UTC().Format(time.RFC3339), header(r.Headers, connector.HeaderPipeline), class,
				header(r.Headers, connector.HeaderTopic), header(r.Headers, connector.HeaderPartition), header(r.Headers, connector.HeaderOffset), msg)
		})
	}
	var by []string
	for _, c := range slices.Sorted(maps.Keys(selected)) {
		by = append(by, fmt.Sprintf("%s:%d", c, selected[c]))
	}
	fmt.Fprintf(w, "dry run: would replay %d of %d dead letters of %s (%s); nothing sent, nothing committed\n", n, total, topic, strings.Join(by, ","))
	return nil
}
