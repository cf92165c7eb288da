package archive

import (
	"context"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/tlog"
)

// appendLog adds the rows stored to the transparency log (internal/tlog)
// and writes its tiles, retrying while ClickHouse fails, before the batch
// is acknowledged. The first time, it opens the log: the tree resumes from
// its tiles and catches up on the rows stored before this batch (an
// archive from before the log is upgraded here, its rows read in stream
// order). A crash between the rows and the tiles is repaired the same way
// at the next start.
func (a *Archive) appendLog(ctx context.Context, rows []store.EventRow) error {
	if a.tlog == nil {
		err := a.retry(ctx, "open the transparency log", nil, func() error {
			l, err := tlog.Open(ctx, a.st.Conn())
			if err != nil {
				return err
			}
			a.tlog = l
			a.log.Info("archive: transparency log open", "leaves", l.Size())
			return nil
		})
		if err != nil {
			return err
		}
		// Open read the rows of this batch too if they were stored: Append
		// skips what the log has.
	}
	seqs := make([]uint64, len(rows))
	hashes := make([]string, len(rows))
	for i := range rows {
		seqs[i], hashes[i] = rows[i].StreamSeq, rows[i].Hash
	}
	if err := a.tlog.Append(seqs, hashes); err != nil {
		return err
	}
	return a.retry(ctx, "write the log's tiles", nil, func() error { return a.tlog.Persist(ctx) })
}
