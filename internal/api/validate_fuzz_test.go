package api

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// refName is the contract's name rule written as a regular expression, an independent
// statement of what ValidateName implements by hand.
var refName = regexp.MustCompile(`^_[A-Za-z0-9]{1,24}$`)

// FuzzValidateVariable checks ValidateVariable against a reference written from the contract's
// table (names by regexp, lengths in characters by utf8.RuneCountInString, the dataType list),
// and that a rejection never echoes the value or the displayName, which may be private.
func FuzzValidateVariable(f *testing.F) {
	f.Add("_customerTier", "Gold", "Customer Tier", "text")
	f.Add("_x", strings.Repeat("é", MaxValueLen), strings.Repeat("ü", MaxDisplayNameLen), "")
	f.Add("_x", strings.Repeat("é", MaxValueLen+1), "", "currency")
	f.Add("noUnderscore", "v", "", "")
	f.Add("_bad-name", "v", "", "")
	f.Add("_", "v", "", "")
	f.Add("_ok", "v", "", "money")
	f.Add("_ok", "\xff\xfe", "\xc3", "date")
	f.Fuzz(func(t *testing.T, name, value, displayName, dataType string) {
		v := Variable{Name: name, Value: value, DisplayName: displayName, DataType: dataType}
		wantOK := refName.MatchString(name) &&
			utf8.RuneCountInString(value) <= MaxValueLen &&
			utf8.RuneCountInString(displayName) <= MaxDisplayNameLen &&
			(dataType == "" || dataType == "text" || dataType == "number" || dataType == "phone" ||
				dataType == "date" || dataType == "time" || dataType == "currency")
		err := ValidateVariable(0, &v)
		if (err == nil) != wantOK {
			t.Fatalf("ValidateVariable(%q, %d runes of value, %d of displayName, %q) = %v, reference says valid=%v",
				name, utf8.RuneCountInString(value), utf8.RuneCountInString(displayName), dataType, err, wantOK)
		}
		if err == nil {
			if verr := Validate([]Variable{v}); verr != nil {
				t.Fatalf("Validate rejects a variable ValidateVariable accepts: %v", verr)
			}
			return
		}
		msg := err.Error()
		for _, secret := range []string{value, displayName} {
			// Short strings occur in any message by chance; a secret long enough to be one
			// must not, unless the caller put it in the name or dataType too.
			if len(secret) >= 8 && strings.Contains(msg, secret) &&
				!strings.Contains(name, secret) && !strings.Contains(dataType, secret) {
				t.Fatalf("error %q echoes a value or displayName", msg)
			}
		}
	})
}
