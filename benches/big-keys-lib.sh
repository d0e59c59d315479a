# Sourced by the collections benches (collections-vs-redis.sh,
# collections-callgrind.sh): the big-key tests, one command shape each over
# ONE collection of $BIG elements, with R = redis-benchmark's __rand_int__
# below BIG (-r BIG):
#   zadd_big zincrby_big zrank_big zscore_big zrange_big  the sorted set
#       bigz (scores 0..BIG-1, members m000000000000..)
#   hget_big hset_big      the hash bigh (fields f000000000000.., value v)
#   sismember_big sadd_big  the set bigs (members m000000000000..)
#
#   big_command TEST   the redis-benchmark command words of TEST
#   fill_big PORT TEST  fills TEST's collection with BIG elements (1,000 a
#                       command)

big_command() { # test -> redis-benchmark command words
    case $1 in
        zadd_big) echo "ZADD bigz __rand_int__ m__rand_int__" ;;
        zrank_big) echo "ZRANK bigz m__rand_int__" ;;
        zscore_big) echo "ZSCORE bigz m__rand_int__" ;;
        zincrby_big) echo "ZINCRBY bigz 1 m__rand_int__" ;;
        zrange_big) echo "ZRANGEBYSCORE bigz __rand_int__ +inf LIMIT 0 10" ;;
        hget_big) echo "HGET bigh f__rand_int__" ;;
        hset_big) echo "HSET bigh f__rand_int__ w" ;;
        sismember_big) echo "SISMEMBER bigs m__rand_int__" ;;
        sadd_big) echo "SADD bigs m__rand_int__" ;;
    esac
}

fill_big() { # port test
    local batch=1000 i j line m
    for ((i = 0; i < BIG; i += batch)); do
        line=""
        for ((j = i; j < i + batch && j < BIG; j++)); do
            printf -v m '%012d' "$j"
            case $2 in
                h*) line+=" f$m v" ;;
                s*) line+=" m$m" ;;
                *) line+=" $j m$m" ;;
            esac
        done
        case $2 in
            h*) echo "HSET bigh$line" ;;
            s*) echo "SADD bigs$line" ;;
            *) echo "ZADD bigz$line" ;;
        esac
    done | redis-cli -p "$1" >/dev/null
}
