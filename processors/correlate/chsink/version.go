package chsink

import (
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"strings"

	"github.com/evidencepipeline/evidence/processors/correlate"
)

// Class is what a record is, the top two bits of its version: evidence
// only moves a deployment from a lower class to a higher one.
type Class uint64

// The classes of records.
const (
	ClassUnmatched Class = 0 // deployments that match no change
	ClassPush      Class = 1 // a direct push to the default branch
	ClassMerge     Class = 2 // a merged pull request
)

const (
	classShift = 62
	countShift = 32
	maxCount   = 1<<(classShift-countShift) - 1 // events beyond it rank as many
	lowMask    = 1<<classShift - 1
)

// ClassOf is the class of a record.
func ClassOf(r correlate.Record) Class {
	switch {
	case r.Unmatched:
		return ClassUnmatched
	case r.DirectPush:
		return ClassPush
	}
	return ClassMerge
}

// classOfID is the class of a record known only by its id: unmatched:...
// is an unmatched deployment's; any other id retired is a direct push's
// (a merged pull request's record is never retired).
func classOfID(id string) Class {
	if strings.HasPrefix(id, "unmatched:") {
		return ClassUnmatched
	}
	return ClassPush
}

// ClassOfVersion is the class a version was written with.
func ClassOfVersion(v uint64) Class { return Class(v >> classShift) }

// Version is the version the record's rows are written with:
// class << 62 | events << 32 | the first 4 bytes of hash, hash being the
// hex SHA-256 of the record's canonical JSON (Record.Hash). See the
// package doc for why.
func Version(r correlate.Record, hash string) uint64 {
	return version(ClassOf(r), EventCount(r), hash)
}

func version(c Class, events int, hash string) uint64 {
	n := min(events, maxCount)
	var tie uint64
	if b, err := hex.DecodeString(hash[:min(8, len(hash))]); err == nil && len(b) == 4 {
		tie = uint64(binary.BigEndian.Uint32(b))
	}
	return uint64(c)<<classShift | uint64(n)<<countShift | tie
}

// Tombstone is the version of a retired record of class c: above every
// version of its class, below every version of a higher one.
func Tombstone(c Class) uint64 { return uint64(c)<<classShift | lowMask }

// EventCount is the number of distinct CloudEvents (source and id) the
// record lists, wherever it lists them: the pull request, its heads and
// reviews, pushes, ticket history, approvals and rejections, runs,
// artifacts, tests, scans, deployments and exceptions.
func EventCount(r correlate.Record) int {
	seen := map[correlate.EventRef]struct{}{}
	collectRefs(reflect.ValueOf(r), seen)
	return len(seen)
}

var refType = reflect.TypeFor[correlate.EventRef]()

// collectRefs adds every EventRef reachable from v through exported
// fields, pointers and slices: a list of events added to the record later
// is counted without a change here.
func collectRefs(v reflect.Value, seen map[correlate.EventRef]struct{}) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			collectRefs(v.Elem(), seen)
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem() == refType {
			for i := range v.Len() {
				seen[v.Index(i).Interface().(correlate.EventRef)] = struct{}{}
			}
			return
		}
		for i := range v.Len() {
			collectRefs(v.Index(i), seen)
		}
	case reflect.Struct:
		if v.Type() == refType {
			seen[v.Interface().(correlate.EventRef)] = struct{}{}
			return
		}
		t := v.Type()
		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				collectRefs(v.Field(i), seen)
			}
		}
	}
}
