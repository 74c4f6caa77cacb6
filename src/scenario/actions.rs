//! A scenario's actions in the order they are scheduled, with a fleet's many alike ones made on
//! demand rather than stored: a million-volume fleet would otherwise keep two actions per
//! volume (about 180 bytes) alive for the whole run.

use std::borrow::Cow;

use super::{Action, ActionKind, ActionSource, VolumeOp};
use crate::engine::SimTime;

/// The actions, listed or generated, in scheduling order.
#[derive(Clone, Debug, Default)]
pub struct Actions {
    listed: Vec<Action>,
    /// Runs of generated actions, in order: each comes just before `listed[before]` (or at the
    /// end when `before` is `listed.len()`), after any earlier run with the same `before`.
    generated: Vec<Generated>,
}

/// A fleet's actions at 0s: `count` alike ones from the `first` instance or volume on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Generated {
    before: usize,
    made: Made,
    first: usize,
    count: usize,
    fleet: usize,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Made {
    /// The instance's RunInstances.
    RunInstance,
    /// The volume's CreateVolume, after which it attaches itself.
    CreateVolume,
}

impl Generated {
    fn action(&self, k: usize) -> Action {
        let what = match self.made {
            Made::RunInstance => ActionKind::RunInstance(self.first + k),
            Made::CreateVolume => ActionKind::Volume { volume: self.first + k, op: VolumeOp::Create },
        };
        Action { at: SimTime::ZERO, what, source: ActionSource::Fleet { fleet: self.fleet } }
    }
}

/// Where actions are: a listed one, or a run's from its `k`-th on.
#[derive(Clone, Copy)]
enum Place<'a> {
    Listed(&'a Action),
    Made(&'a Generated, usize),
}

impl<'a> Place<'a> {
    /// How many actions are here.
    fn count(self) -> usize {
        match self {
            Place::Listed(_) => 1,
            Place::Made(g, k) => g.count - k,
        }
    }

    /// When they are due: a run's at 0s.
    fn at(self) -> SimTime {
        match self {
            Place::Listed(a) => a.at,
            Place::Made(..) => SimTime::ZERO,
        }
    }

    /// The `n`-th action here.
    fn nth(self, n: usize) -> Cow<'a, Action> {
        match self {
            Place::Listed(a) => Cow::Borrowed(a),
            Place::Made(g, k) => Cow::Owned(g.action(k + n)),
        }
    }

    /// Every action here, with its index given the first's.
    fn actions(self, first: usize) -> impl Iterator<Item = (usize, Cow<'a, Action>)> {
        (0..self.count()).map(move |n| (first + n, self.nth(n)))
    }
}

impl Extend<Action> for Actions {
    fn extend<I: IntoIterator<Item = Action>>(&mut self, actions: I) {
        self.listed.extend(actions);
    }
}

impl Actions {
    /// Appends a listed action.
    pub fn push(&mut self, action: Action) {
        self.listed.push(action);
    }

    /// Appends `count` generated actions of fleet `fleet`, from instance or volume `first` on.
    pub(crate) fn generate(&mut self, made: Made, first: usize, count: usize, fleet: usize) {
        if count > 0 {
            self.generated.push(Generated { before: self.listed.len(), made, first, count, fleet });
        }
    }

    /// The listed actions: every one but the fleets' generated RunInstances and CreateVolumes.
    #[must_use]
    pub fn listed(&self) -> &[Action] {
        &self.listed
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.listed.len() + self.generated.iter().map(|g| g.count).sum::<usize>()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn place(&self, mut i: usize) -> Option<Place<'_>> {
        let mut listed = 0;
        for g in &self.generated {
            let before = g.before - listed;
            if i < before {
                return Some(Place::Listed(&self.listed[listed + i]));
            }
            i -= before;
            listed = g.before;
            if i < g.count {
                return Some(Place::Made(g, i));
            }
            i -= g.count;
        }
        self.listed.get(listed + i).map(Place::Listed)
    }

    /// The `i`-th action in scheduling order (the index an input cause names).
    #[must_use]
    pub fn get(&self, i: usize) -> Option<Cow<'_, Action>> {
        Some(self.place(i)?.nth(0))
    }

    /// The listed actions and the runs in scheduling order, each with its first action's index.
    fn segments(&self) -> impl Iterator<Item = (usize, Place<'_>)> {
        let mut runs = self.generated.iter().peekable();
        let mut listed = self.listed.iter().enumerate().peekable();
        let mut index = 0;
        std::iter::from_fn(move || {
            let next_listed = listed.peek().map(|&(j, _)| j);
            let place = match runs.peek() {
                Some(g) if next_listed.is_none_or(|j| g.before <= j) => Place::Made(runs.next()?, 0),
                _ => Place::Listed(listed.next()?.1),
            };
            index += place.count();
            Some((index - place.count(), place))
        })
    }

    /// Every action with its index, in the order they are due: by time, and in scheduling order
    /// at one instant. Only the listed actions and the runs are sorted; a run's actions are made
    /// as they are taken.
    pub fn by_time(&self) -> impl Iterator<Item = (usize, Cow<'_, Action>)> {
        let mut segments: Vec<(usize, Place<'_>)> = self.segments().collect();
        segments.sort_by_key(|&(first, place)| (place.at(), first));
        segments.into_iter().flat_map(|(first, place)| place.actions(first))
    }

    /// Every action, in scheduling order.
    pub fn iter(&self) -> impl Iterator<Item = Cow<'_, Action>> {
        self.segments().flat_map(|(first, place)| place.actions(first)).map(|(_, action)| action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(n: usize) -> Action {
        Action {
            at: SimTime::from_ms(u64::try_from(n).unwrap()),
            what: ActionKind::RunInstance(n),
            source: ActionSource::Declared { path: format!("instances[{n}]") },
        }
    }

    fn describe(a: &Action) -> String {
        format!("{:?}/{}", a.what, a.source.path())
    }

    #[test]
    fn get_and_iter_agree_on_the_order() {
        let mut actions = Actions::default();
        actions.generate(Made::RunInstance, 10, 2, 0);
        actions.push(listed(0));
        actions.generate(Made::RunInstance, 20, 1, 1);
        actions.push(listed(1));
        actions.push(listed(2));
        actions.generate(Made::CreateVolume, 30, 3, 0);
        actions.generate(Made::CreateVolume, 40, 1, 1);
        actions.push(listed(3));
        let all: Vec<String> = actions.iter().map(|a| describe(&a)).collect();
        let expected = [
            "RunInstance(10)/fleets[0]",
            "RunInstance(11)/fleets[0]",
            "RunInstance(0)/instances[0]",
            "RunInstance(20)/fleets[1]",
            "RunInstance(1)/instances[1]",
            "RunInstance(2)/instances[2]",
            "Volume { volume: 30, op: Create }/fleets[0]",
            "Volume { volume: 31, op: Create }/fleets[0]",
            "Volume { volume: 32, op: Create }/fleets[0]",
            "Volume { volume: 40, op: Create }/fleets[1]",
            "RunInstance(3)/instances[3]",
        ];
        assert_eq!(all, expected);
        assert_eq!(actions.len(), expected.len());
        for (i, e) in expected.iter().enumerate() {
            assert_eq!(&describe(&actions.get(i).unwrap()), e, "action {i}");
        }
        assert!(actions.get(expected.len()).is_none());
    }

    #[test]
    fn by_time_is_the_scheduling_order_sorted_stably_by_time() {
        let mut actions = Actions::default();
        let at = |ms: u64, n: usize| Action { at: SimTime::from_ms(ms), ..listed(n) };
        actions.push(at(5, 0));
        actions.generate(Made::RunInstance, 10, 2, 0);
        actions.push(at(0, 1));
        actions.push(at(3, 2));
        actions.push(at(3, 3));
        actions.generate(Made::CreateVolume, 30, 2, 0);
        actions.push(at(1, 4));
        actions.push(at(0, 5));
        let mut expected: Vec<(usize, String)> = actions.iter().map(|a| describe(&a)).enumerate().collect();
        let times: Vec<SimTime> = actions.iter().map(|a| a.at).collect();
        expected.sort_by_key(|(i, _)| times[*i]);
        let got: Vec<(usize, String)> = actions.by_time().map(|(i, a)| (i, describe(&a))).collect();
        assert_eq!(got, expected);
        assert_eq!(got[..5].iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2, 3, 6, 7]);
    }
}
