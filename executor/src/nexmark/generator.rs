//! One Nexmark event from (seed, event number).
//!
//! Event n's type: with r = n mod 50, r < 1 a person, r < 4 an auction,
//! otherwise a bid (1 : 3 : 46). Ids are dense per type and start at 1000.
//! Bids and auctions favour hot auctions, bidders and sellers (the most
//! recent multiple of 100) as the reference generators do; the rest is
//! uniform over recent ids. All randomness comes from a generator seeded
//! with (seed, n) alone.

use super::{NexmarkConfig, Stream};
use crate::generated::mix64;

const PROPORTION: u64 = 50;
const PERSONS: u64 = 1;
const AUCTIONS: u64 = 3;
const FIRST_ID: i64 = 1000;
const HOT_RATIO: u64 = 100;
const RECENT_PEOPLE: u64 = 1000;
const RECENT_AUCTIONS: u64 = 100;
const AUCTIONS_AHEAD: u64 = 10;
/// An auction stays open for up to the time of this many events.
const AUCTION_SPAN_EVENTS: u64 = 1666;

const STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const CHANNEL_IDS: u64 = 10_000;

/// Average encoded sizes the `extra` column pads events to.
const PERSON_BYTES: usize = 200;
const AUCTION_BYTES: usize = 500;
const BID_BYTES: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub id: i64,
    pub name: String,
    pub email_address: String,
    pub credit_card: String,
    pub city: &'static str,
    pub state: &'static str,
    pub date_time: i64,
    pub extra: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Auction {
    pub id: i64,
    pub item_name: String,
    pub description: String,
    pub initial_bid: i64,
    pub reserve: i64,
    pub date_time: i64,
    pub expires: i64,
    pub seller: i64,
    pub category: i64,
    pub extra: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bid {
    pub auction: i64,
    pub bidder: i64,
    pub price: i64,
    pub channel: String,
    pub url: String,
    pub date_time: i64,
    pub extra: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Person(Person),
    Auction(Auction),
    Bid(Bid),
}

/// The stream event `n` belongs to.
pub fn stream_of(n: u64) -> Stream {
    match n % PROPORTION {
        r if r < PERSONS => Stream::Person,
        r if r < PERSONS + AUCTIONS => Stream::Auction,
        _ => Stream::Bid,
    }
}

/// People generated up to and including event `n`, less one: the number
/// of the newest person.
fn last_person(n: u64) -> u64 {
    n / PROPORTION
}

/// The number of the newest auction at event `n` (0 before the first).
fn last_auction(n: u64) -> u64 {
    let seen_in_epoch = (n % PROPORTION + 1).saturating_sub(PERSONS).min(AUCTIONS);
    (n / PROPORTION * AUCTIONS + seen_in_epoch).saturating_sub(1)
}

/// Event `n` of a run with `config`.
pub fn event(config: &NexmarkConfig, n: u64) -> Event {
    let mut rng = Rng::new(config.seed, n);
    let date_time = config.event_time(n);
    match stream_of(n) {
        Stream::Person => Event::Person(person(&mut rng, n, date_time)),
        Stream::Auction => Event::Auction(auction(&mut rng, config, n, date_time)),
        Stream::Bid => Event::Bid(bid(&mut rng, n, date_time)),
    }
}

fn person(rng: &mut Rng, n: u64, date_time: i64) -> Person {
    let name = format!("{} {}", rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES));
    let email_address = format!("{}@{}.com", rng.word(7), rng.word(5));
    let credit_card = (0..4)
        .map(|_| format!("{:04}", rng.below(10_000)))
        .collect::<Vec<_>>()
        .join(" ");
    let city = rng.pick(&CITIES);
    let state = rng.pick(&STATES);
    let used = 8 + name.len() + email_address.len() + credit_card.len() + city.len() + 2 + 8;
    Person {
        id: FIRST_ID + last_person(n) as i64,
        extra: rng.padding(PERSON_BYTES, used),
        name,
        email_address,
        credit_card,
        city,
        state,
        date_time,
    }
}

fn auction(rng: &mut Rng, config: &NexmarkConfig, n: u64, date_time: i64) -> Auction {
    let newest = last_person(n);
    let seller = if rng.below(4) > 0 {
        newest / HOT_RATIO * HOT_RATIO
    } else {
        rng.between(newest.saturating_sub(RECENT_PEOPLE), newest)
    };
    let initial_bid = rng.price();
    let reserve = initial_bid + rng.price();
    let span = 1 + rng.below(AUCTION_SPAN_EVENTS);
    let item_name = rng.word(20);
    let description = rng.word(100);
    let used = 8 + item_name.len() + description.len() + 8 * 6;
    Auction {
        id: FIRST_ID + last_auction(n) as i64,
        extra: rng.padding(AUCTION_BYTES, used),
        item_name,
        description,
        initial_bid,
        reserve,
        date_time,
        expires: date_time + span as i64 * config.inter_event_nanos(),
        seller: FIRST_ID + seller as i64,
        category: 10 + rng.below(5) as i64,
    }
}

fn bid(rng: &mut Rng, n: u64, date_time: i64) -> Bid {
    let newest_auction = last_auction(n);
    let auction = if rng.below(2) == 0 {
        newest_auction / HOT_RATIO * HOT_RATIO
    } else {
        rng.between(
            newest_auction.saturating_sub(RECENT_AUCTIONS),
            newest_auction + AUCTIONS_AHEAD,
        )
    };
    let newest_person = last_person(n);
    let bidder = if rng.below(4) > 0 {
        newest_person / HOT_RATIO * HOT_RATIO + 1
    } else {
        rng.between(newest_person.saturating_sub(RECENT_PEOPLE), newest_person)
    };
    let price = rng.price();
    let path = format!(
        "https://www.nexmark.com/{}/{}/{}/item.htm?query=1",
        rng.word(5),
        rng.word(5),
        rng.word(5)
    );
    let (channel, url) = if rng.below(2) == 0 {
        (rng.pick(&CHANNELS).to_string(), path)
    } else {
        let id = rng.below(CHANNEL_IDS);
        (format!("channel-{id}"), format!("{path}&channel_id={id}"))
    };
    let used = 8 * 4 + channel.len() + url.len();
    Bid {
        auction: FIRST_ID + auction as i64,
        bidder: FIRST_ID + bidder as i64,
        price,
        extra: rng.padding(BID_BYTES, used),
        channel,
        url,
        date_time,
    }
}

/// SplitMix64: small, fast, and good enough for benchmark data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, n: u64) -> Self {
        let mut rng = Rng(seed ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next();
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    /// Uniform in `[0, bound)`; 0 when `bound` is 0.
    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `[low, high]`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<T: Copy>(&mut self, options: &[T]) -> T {
        options[self.below(options.len() as u64) as usize]
    }

    /// A price in cents: 10^(6u) dollars, so mostly small, some large.
    fn price(&mut self) -> i64 {
        (10f64.powf(self.unit() * 6.0) * 100.0).round() as i64
    }

    /// `len` random lowercase letters.
    fn word(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'a' + self.below(26) as u8))
            .collect()
    }

    /// Random letters that bring an event of `used` bytes to `target` on
    /// average: between none and twice the shortfall.
    fn padding(&mut self, target: usize, used: usize) -> String {
        let short = target.saturating_sub(used) as u64;
        let len = self.below(2 * short + 1) as usize;
        self.word(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> NexmarkConfig {
        NexmarkConfig {
            seed: 7,
            event_rate: 1000,
            max_events: None,
        }
    }

    #[test]
    fn events_are_a_function_of_seed_and_number() {
        let config = config();
        for n in [0, 1, 4, 49, 50, 123_456] {
            assert_eq!(event(&config, n), event(&config, n));
        }
        let other = NexmarkConfig { seed: 8, ..config };
        assert_ne!(event(&config, 10), event(&other, 10));
    }

    #[test]
    fn one_person_three_auctions_forty_six_bids_in_fifty() {
        let counts = (0..50_000).fold([0; 3], |mut counts, n| {
            counts[Stream::ALL.iter().position(|s| *s == stream_of(n)).unwrap()] += 1;
            counts
        });
        assert_eq!(counts, [1000, 3000, 46_000]);
    }

    #[test]
    fn ids_are_dense_per_stream_and_start_at_1000() {
        let config = config();
        let mut people = Vec::new();
        let mut auctions = Vec::new();
        for n in 0..500 {
            match event(&config, n) {
                Event::Person(p) => people.push(p.id),
                Event::Auction(a) => auctions.push(a.id),
                Event::Bid(_) => {}
            }
        }
        assert_eq!(people, (1000..1010).collect::<Vec<_>>());
        assert_eq!(auctions, (1000..1030).collect::<Vec<_>>());
    }

    #[test]
    fn bids_name_existing_or_near_auctions_and_people() {
        let config = config();
        let mut hot = 0;
        let mut bids = 0;
        for n in 0..100_000 {
            if let Event::Bid(bid) = event(&config, n) {
                bids += 1;
                let newest_auction = FIRST_ID + last_auction(n) as i64;
                let newest_person = FIRST_ID + last_person(n) as i64;
                assert!(bid.auction <= newest_auction + AUCTIONS_AHEAD as i64);
                assert!(bid.auction >= newest_auction - RECENT_AUCTIONS as i64);
                assert!(bid.bidder <= newest_person + 1);
                assert!(bid.price > 0);
                assert_eq!(bid.date_time, config.event_time(n));
                if (bid.bidder - FIRST_ID) % HOT_RATIO as i64 == 1 {
                    hot += 1;
                }
                if let Some(id) = bid.channel.strip_prefix("channel-") {
                    assert!(bid.url.ends_with(&format!("channel_id={id}")));
                }
            }
        }
        // 3/4 of bidders are hot, plus the uniform picks that land on one.
        let share = f64::from(hot) / f64::from(bids);
        assert!((0.74..0.78).contains(&share), "hot bidder share {share}");
    }

    #[test]
    fn auctions_expire_after_they_start_and_reserve_exceeds_the_first_bid() {
        let config = config();
        for n in (1..20_000).filter(|n| stream_of(*n) == Stream::Auction) {
            let Event::Auction(a) = event(&config, n) else {
                unreachable!()
            };
            assert!(a.expires > a.date_time);
            assert!(a.reserve > a.initial_bid);
            assert!((10..15).contains(&a.category));
            assert!(a.seller <= FIRST_ID + last_person(n) as i64);
        }
    }

    #[test]
    fn extra_pads_events_to_their_average_sizes() {
        let config = config();
        let mut sizes = [(0usize, 0usize); 3];
        for n in 0..50_000 {
            let (slot, size) = match event(&config, n) {
                Event::Person(p) => (
                    0,
                    8 + p.name.len()
                        + p.email_address.len()
                        + p.credit_card.len()
                        + p.city.len()
                        + p.state.len()
                        + 8
                        + p.extra.len(),
                ),
                Event::Auction(a) => (
                    1,
                    8 * 6 + 8 + a.item_name.len() + a.description.len() + a.extra.len(),
                ),
                Event::Bid(b) => (2, 8 * 4 + b.channel.len() + b.url.len() + b.extra.len()),
            };
            sizes[slot].0 += size;
            sizes[slot].1 += 1;
        }
        let average = |(total, count): (usize, usize)| total / count;
        assert!((180..=220).contains(&average(sizes[0])), "{sizes:?}");
        assert!((450..=550).contains(&average(sizes[1])), "{sizes:?}");
        assert!((90..=130).contains(&average(sizes[2])), "{sizes:?}");
    }
}
