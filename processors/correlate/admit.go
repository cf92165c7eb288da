package correlate

import (
	"encoding/json"
	"fmt"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// Admit reports whether the correlation stage could file the facts of e,
// so that the door refuses (400) what this stage would otherwise
// dead-letter after the producer was told the evidence is stored: facts
// that cannot be extracted (data of the wrong shape, a number that is not
// an exact integer where one is needed), a correlation key that does not
// fit in a KV key, or a fact larger on its own than an entry of the
// bucket may be (maxValue, KVState.MaxValueSize; 0 skips that check).
// An error is a *ce.Error naming the field at fault where it can.
//
// Only an entry grown past maxValue by many facts (a hot key) can still
// be refused later: that depends on the state, not on the event.
func (x Extractor) Admit(e *ce.Event, maxValue int) error {
	facts, err := x.Extract(e)
	if err != nil {
		return err
	}
	for i := range facts {
		f := &facts[i]
		for _, k := range f.Keys {
			if _, err := KVKey(k); err != nil {
				return &ce.Error{Field: "data", Message: fmt.Sprintf("%v: the correlation stage could not file this event's %s fact (shorten the identifiers it is keyed by)", err, f.Kind)}
			}
		}
		if maxValue > 0 && len(f.Keys) > 0 {
			b, err := json.Marshal(Entry{Key: f.Keys[0], Facts: []Fact{*f}})
			if err != nil {
				return fmt.Errorf("correlate: encode fact: %w", err)
			}
			if len(b) > maxValue {
				return &ce.Error{Field: "data", Message: fmt.Sprintf("the %s fact of this event takes %d bytes, more than a correlation entry may hold (%d)", f.Kind, len(b), maxValue)}
			}
		}
	}
	return nil
}
