//! The command line, made from the declarations: the flags of each command and what they gave.

use std::collections::BTreeMap;

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

use super::Group::{Server, Upstream};
use super::{ALL, Group, Kind, Setting};

/// What the command line gave, by setting key (switches as `true`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given(pub(super) BTreeMap<&'static str, Vec<String>>);

impl Given {
    /// `setting` given on the command line as `value` (tests, and callers that build the
    /// settings themselves).
    pub fn with(mut self, setting: &Setting, value: impl Into<String>) -> Self {
        self.0.entry(setting.key).or_default().push(value.into());
        self
    }

    /// What the command line gave for `setting`, as given (untrimmed).
    pub fn get(&self, setting: &Setting) -> Option<&Vec<String>> {
        self.0.get(setting.key)
    }

    fn of(matches: &ArgMatches, group: Group) -> Self {
        let mut given = BTreeMap::new();
        for s in ALL.iter().filter(|s| in_command(s, group)) {
            let values: Vec<String> = match s.kind {
                Kind::Switch if matches.get_flag(s.key) => vec!["true".to_owned()],
                Kind::Switch => vec![],
                Kind::Value | Kind::List | Kind::Repeated => matches
                    .get_many::<String>(s.key)
                    .map(|v| v.cloned().collect())
                    .unwrap_or_default(),
            };
            if !values.is_empty() {
                given.insert(s.key, values);
            }
        }
        Self(given)
    }
}

/// Whether the command of `group` takes `setting`'s flag.
fn in_command(setting: &Setting, group: Group) -> bool {
    setting.flag.is_some() && (setting.group == Upstream || group == Server)
}

/// The flags of `group`'s command, made from the declarations.
fn flags(mut cmd: Command, group: Group) -> Command {
    for s in ALL.iter().filter(|s| in_command(s, group)) {
        let Some(flag) = s.flag else { continue };
        let mut help = s.help.to_owned();
        if let Some(env) = s.env {
            help.push_str(&format!(" [env: {env}]"));
        }
        if let Some(default) = s.default {
            help.push_str(&format!(" [default: {default}]"));
        }
        let arg = Arg::new(s.key).long(flag).help(help);
        let arg = match s.kind {
            Kind::Switch => arg.action(ArgAction::SetTrue),
            Kind::Value => arg.action(ArgAction::Set).value_name(s.value_name),
            Kind::Repeated => arg.action(ArgAction::Append).value_name(s.value_name),
            Kind::List => arg
                .action(ArgAction::Append)
                .value_delimiter(',')
                .value_name(s.value_name),
        };
        cmd = cmd.arg(arg);
    }
    cmd
}

macro_rules! flags_of {
    ($name:ident, $group:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct $name(pub Given);

        impl FromArgMatches for $name {
            fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
                Ok(Self(Given::of(matches, $group)))
            }

            fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
                *self = Self::from_arg_matches(matches)?;
                Ok(())
            }
        }

        impl Args for $name {
            fn augment_args(cmd: Command) -> Command {
                flags(cmd, $group)
            }

            fn augment_args_for_update(cmd: Command) -> Command {
                flags(cmd, $group)
            }
        }
    };
}

flags_of!(
    UpstreamFlags,
    Upstream,
    "The flags of the upstream's settings (`config`)."
);
flags_of!(
    ServerFlags,
    Server,
    "The flags of every setting (`serve`, `stdio`)."
);
