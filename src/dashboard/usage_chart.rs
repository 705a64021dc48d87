//! The usage chart: a key's hourly requests as a small inline SVG bar
//! chart, drawn on the server (Account Security and the key's usage page).

use crate::auth::usage::{hour_start, Counts, Hour};

/// A bar chart of hourly requests as inline SVG (no script, no inline
/// style: colours come from classes in `static/portico.css`).
pub struct Chart {
    pub width: usize,
    pub height: u32,
    pub bars: Vec<Bar>,
    /// What the chart shows, for screen readers and as a tooltip.
    pub summary: String,
}

/// One hour: the allowed part at the bottom, the denied part on top.
pub struct Bar {
    pub x: usize,
    pub allowed_y: u32,
    pub allowed_height: u32,
    pub denied_y: u32,
    pub denied_height: u32,
    pub title: String,
}

impl Chart {
    /// One bar per hour, scaled so the busiest hour fills `height`.
    pub fn new(series: &[(Hour, Counts)], height: u32) -> Self {
        let peak = series
            .iter()
            .map(|(_, counts)| counts.allowed() + counts.denied())
            .max()
            .unwrap_or(0)
            .max(1);
        let scaled = |n: u32| {
            u32::try_from(u64::from(n) * u64::from(height) / u64::from(peak)).unwrap_or(height)
        };
        let bars = series
            .iter()
            .enumerate()
            .filter(|(_, (_, counts))| !counts.is_empty())
            .map(|(x, (hour, counts))| {
                let total = counts.allowed() + counts.denied();
                // A busy hour is never drawn as nothing.
                let total_height = scaled(total).max(1);
                let allowed_height = scaled(counts.allowed()).min(total_height);
                Bar {
                    x,
                    allowed_y: height - allowed_height,
                    allowed_height,
                    denied_y: height - total_height,
                    denied_height: total_height - allowed_height,
                    title: format!(
                        "{}: {} allowed, {} denied",
                        hour_start(*hour).format("%Y-%m-%d %H:00 UTC"),
                        counts.allowed(),
                        counts.denied()
                    ),
                }
            })
            .collect();
        let mut total = Counts::default();
        for (_, counts) in series {
            total.add(counts);
        }
        Self {
            width: series.len(),
            height,
            bars,
            summary: format!(
                "Last 7 days: {} allowed, {} denied",
                total.allowed(),
                total.denied()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::usage::Outcome;

    #[test]
    fn the_busiest_hour_fills_the_chart_and_a_quiet_one_still_shows() {
        let mut busy = Counts::default();
        busy.0[Outcome::Allowed.index()] = 90;
        busy.0[Outcome::RateLimited.index()] = 10;
        let mut quiet = Counts::default();
        quiet.0[Outcome::Allowed.index()] = 1;
        let series = vec![(10, busy), (11, Counts::default()), (12, quiet)];
        let chart = Chart::new(&series, 20);
        assert_eq!(chart.bars.len(), 2);
        let top = &chart.bars[0];
        assert_eq!((top.allowed_height, top.denied_height), (18, 2));
        assert_eq!((top.denied_y, top.allowed_y), (0, 2));
        let low = &chart.bars[1];
        assert_eq!((low.x, low.allowed_height + low.denied_height), (2, 1));
        assert_eq!(chart.summary, "Last 7 days: 91 allowed, 10 denied");
    }
}
