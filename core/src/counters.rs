//! Plain counter structs that add up: per venue, per feed, into a run's total.

/// Declares a struct of `u64` counters (`#[derive(Debug, Clone, Copy, Default, PartialEq,
/// Eq)]`) with `AddAssign`, so per-venue or per-feed counters sum field by field without
/// a hand-written list that can miss a field added later.
///
/// ```
/// flowcore_core::counters! {
///     /// What a feed counted.
///     pub struct Seen {
///         /// Messages.
///         pub messages: u64,
///     }
/// }
/// let mut total = Seen::default();
/// total += Seen { messages: 2 };
/// total += Seen { messages: 3 };
/// assert_eq!(total.messages, 5);
/// ```
#[macro_export]
macro_rules! counters {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$field_meta:meta])* $field_vis:vis $field:ident: u64, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        $vis struct $name {
            $( $(#[$field_meta])* $field_vis $field: u64, )*
        }

        impl ::core::ops::AddAssign for $name {
            #[inline]
            fn add_assign(&mut self, other: Self) {
                $( self.$field += other.$field; )*
            }
        }

        impl ::core::iter::Sum for $name {
            fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
                let mut total = Self::default();
                for part in iter {
                    total += part;
                }
                total
            }
        }
    };
}
