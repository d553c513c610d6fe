package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"go.uber.org/zap"

	"github.com/augment-connector/augment-connector/connector"
	"github.com/augment-connector/augment-connector/internal/api"
	"github.com/augment-connector/augment-connector/internal/app"
)

// cmdGet is `augment-connector get --config FILE --tenant NAME IDENTIFIER`: it reads an
// interaction through the API and prints its context and variables, privacy values masked.
func cmdGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/augment-connector/config.yaml", "config file")
	tenant := fs.String("tenant", "", "tenant name (a key under tenants:); may be omitted when there is one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: get needs one IDENTIFIER", errUsage)
	}
	compiled, err := app.Load(*path)
	if err != nil {
		return err
	}
	opts, err := compiled.Options(nopLogger())
	if err != nil {
		return err
	}
	name := *tenant
	if name == "" && len(opts.Tenants) == 1 {
		for n := range opts.Tenants {
			name = n
		}
	}
	to, ok := opts.Tenants[name]
	if !ok {
		return fmt.Errorf("%w: unknown tenant %q (use --tenant)", errUsage, name)
	}
	ia, err := connector.GetInteraction(ctx, to, fs.Arg(0))
	if err != nil {
		return err
	}
	printInteraction(stdout, ia)
	return nil
}

// masked is what a privacy:true value prints as.
const masked = "******"

func printInteraction(w io.Writer, ia api.Interaction) {
	fmt.Fprintf(w, "interaction %s\n", ia.InteractionID)
	for _, kv := range [][2]string{{"channel", ia.Channel}, {"createTime", ia.CreateTime}, {"ani", ia.ANI}, {"callerName", ia.CallerName}} {
		if kv[1] != "" {
			fmt.Fprintf(w, "  %-11s %s\n", kv[0], kv[1])
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVALUE\tFLAGS\tDISPLAY NAME\tTYPE")
	for _, v := range ia.Variables {
		val := v.Value
		if v.Privacy {
			val = masked
		}
		var flags []string
		for _, f := range []struct {
			on   bool
			name string
		}{{v.IVR, "ivr"}, {v.Display, "display"}, {v.Privacy, "privacy"}} {
			if f.on {
				flags = append(flags, f.name)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Name, val, strings.Join(flags, ","), v.DisplayName, v.DataType)
	}
	_ = tw.Flush()
}

func nopLogger() *zap.Logger { return zap.NewNop() }
