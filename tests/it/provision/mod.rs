//! The `cognigate` CLI against moto behind the strict Cognito peer: what each
//! command creates, changes, prints and refuses.

mod callbacks;
mod destroy;
mod doctor;
mod gc;
mod lifecycle;
mod machine;
mod rates;
mod real_cognito;
mod recipes;
mod shell;
mod strict;
mod up;
mod usage;
mod users;
