package engine

import "github.com/reelrank/reelrank/eventlog"

type eventlogEvent = eventlog.Event
