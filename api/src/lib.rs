#![doc = include_str!("../README.md")]

pub mod admin;
pub mod background;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod files;
pub mod graphql;
pub mod health;
pub mod metrics;
pub mod rest;
pub mod service;
pub mod startup;
pub mod stats;
pub mod storage;
pub mod telemetry;
pub mod web;

pub use startup::App;
