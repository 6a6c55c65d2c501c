//! A stream's events over a range of event numbers, as one Arrow batch.

use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use datafusion::error::Result;

use super::generator::{Event, event};
use super::{NexmarkConfig, Stream};

fn ints<T>(rows: &[T], column: impl Fn(&T) -> i64) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(rows.iter().map(column)))
}

fn texts<T>(rows: &[T], column: impl Fn(&T) -> &str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(rows.iter().map(column)))
}

fn times<T>(rows: &[T], column: impl Fn(&T) -> i64) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from_iter_values(
        rows.iter().map(column),
    ))
}

impl Stream {
    /// This stream's events among event numbers `events`, in order, with
    /// each row's event number.
    pub fn batch(
        self,
        config: &NexmarkConfig,
        events: Range<u64>,
    ) -> Result<(RecordBatch, Vec<u64>)> {
        let numbers: Vec<u64> = events.filter(|n| self.holds(*n)).collect();
        let events = numbers.iter().map(|n| event(config, *n));
        let columns = match self {
            Stream::Person => {
                let rows: Vec<_> = events
                    .filter_map(|e| match e {
                        Event::Person(p) => Some(p),
                        _ => None,
                    })
                    .collect();
                vec![
                    ints(&rows, |p| p.id),
                    texts(&rows, |p| &p.name),
                    texts(&rows, |p| &p.email_address),
                    texts(&rows, |p| &p.credit_card),
                    texts(&rows, |p| p.city),
                    texts(&rows, |p| p.state),
                    times(&rows, |p| p.date_time),
                    texts(&rows, |p| &p.extra),
                ]
            }
            Stream::Auction => {
                let rows: Vec<_> = events
                    .filter_map(|e| match e {
                        Event::Auction(a) => Some(a),
                        _ => None,
                    })
                    .collect();
                vec![
                    ints(&rows, |a| a.id),
                    texts(&rows, |a| &a.item_name),
                    texts(&rows, |a| &a.description),
                    ints(&rows, |a| a.initial_bid),
                    ints(&rows, |a| a.reserve),
                    times(&rows, |a| a.date_time),
                    times(&rows, |a| a.expires),
                    ints(&rows, |a| a.seller),
                    ints(&rows, |a| a.category),
                    texts(&rows, |a| &a.extra),
                ]
            }
            Stream::Bid => {
                let rows: Vec<_> = events
                    .filter_map(|e| match e {
                        Event::Bid(b) => Some(b),
                        _ => None,
                    })
                    .collect();
                vec![
                    ints(&rows, |b| b.auction),
                    ints(&rows, |b| b.bidder),
                    ints(&rows, |b| b.price),
                    texts(&rows, |b| &b.channel),
                    texts(&rows, |b| &b.url),
                    times(&rows, |b| b.date_time),
                    texts(&rows, |b| &b.extra),
                ]
            }
        };
        Ok((
            RecordBatch::try_new(Arc::clone(self.schema()), columns)?,
            numbers,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_the_stream_rows_of_a_range_in_order() {
        let config = NexmarkConfig::default();
        for stream in Stream::ALL {
            let (batch, numbers) = stream.batch(&config, 100..600).unwrap();
            assert_eq!(&batch.schema(), stream.schema());
            assert_eq!(batch.num_rows(), numbers.len());
            assert!(
                numbers
                    .iter()
                    .all(|n| stream.holds(*n) && (100..600).contains(n))
            );
        }
        let (bids, _) = Stream::Bid.batch(&config, 0..1000).unwrap();
        let (first, _) = Stream::Bid.batch(&config, 0..500).unwrap();
        let (second, _) = Stream::Bid.batch(&config, 500..1000).unwrap();
        assert_eq!(bids.num_rows(), 920);
        assert_eq!(
            bids,
            datafusion::arrow::compute::concat_batches(&bids.schema(), [&first, &second]).unwrap(),
            "a range split in two gives the same rows"
        );
    }
}
